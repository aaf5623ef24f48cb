package bench

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestCreateServiceRetried checks createService against what the API
// server answers a create repeated after its first attempt landed: the
// ClusterIP is allocated before the name is looked at, so a Service
// holding the IP gets Invalid "provided IP is already allocated", and one
// holding only the name AlreadyExists (the fake's reactor does the former,
// its tracker the latter).
func TestCreateServiceRetried(t *testing.T) {
	const ns, name, ip = "ns-1", "svc-1", "10.100.0.2"
	svc := func(name, ip string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip}}
	}
	for _, tt := range []struct {
		name    string
		exists  *corev1.Service
		wantErr string // "" for done
	}{
		{"new", nil, ""},
		{"first attempt landed", svc(name, ip), ""},
		{"name taken with another IP", svc(name, "10.100.0.3"), `exists with ClusterIP "10.100.0.3"`},
		{"IP taken by another Service", svc("svc-2", ip), "reading it back"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset()
			if tt.exists != nil {
				if err := cs.Tracker().Add(tt.exists); err != nil {
					t.Fatal(err)
				}
			}
			cs.PrependReactor("create", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
				s := a.(k8stesting.CreateAction).GetObject().(*corev1.Service)
				if tt.exists == nil || tt.exists.Spec.ClusterIP != s.Spec.ClusterIP {
					return false, nil, nil
				}
				return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, s.Name, field.ErrorList{field.Invalid(
					field.NewPath("spec", "clusterIPs"), s.Spec.ClusterIPs, "failed to allocate IP "+s.Spec.ClusterIP+": provided IP is already allocated")})
			})
			err := createService(t.Context(), cs, ns, name, ip, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("createService: %v, want done", err)
				}
				if s, err := cs.CoreV1().Services(ns).Get(t.Context(), name, metav1.GetOptions{}); err != nil || s.Spec.ClusterIP != ip {
					t.Fatalf("after createService: %v, %v; want %s/%s with ClusterIP %s", s, err, ns, name, ip)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("createService: %v, want an error with %q", err, tt.wantErr)
			}
			if apierrors.IsAlreadyExists(err) {
				t.Fatalf("createService: %v is an AlreadyExists, which testenv.ParallelCreate takes as done", err)
			}
		})
	}
}
