// Package layout holds the dependency rules of DESIGN.md ("Dependency rules")
// as a test over the non-test imports that `go list -json ./...` reports.
// Packages that do not exist yet produce no violations.
package layout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Module-relative package paths ("pkg/serve/cache", "cmd/webhook").
const (
	resolvconfPkg = "pkg/resolvconf"
	// inputdir lists a directory's input files by the rule the policy
	// loader and the manifest reader share; standard library only.
	inputdirPkg = "pkg/inputdir"
	policyPkg   = "pkg/policy"
	// nodepool decides a pod's candidate node pools for pkg/policy; as pure.
	nodepoolPkg = "pkg/nodepool"
	servePkg    = "pkg/serve"
	cmdDir      = "cmd"
)

// testSupportPackages are non-test packages that exist only to support tests
// (they start a control plane, ...). They are exempt from the
// controller-runtime and client-go rules, and they may import each other;
// no other non-test package may import them.
var testSupportPackages = []string{
	"internal/certstandin",
	"internal/corefilecorpus",
	"internal/golden",
	"internal/rig",
	"internal/testenv",
	"pkg/policy/policytest",
	"pkg/serve/cluster/clustertest",
	"pkg/serve/dnstest",
}

// controllerRuntimeImporters may import sigs.k8s.io/controller-runtime/...
// (the webhook's admission adapter and main). Subpackages included.
var controllerRuntimeImporters = []string{
	"pkg/policy/admission",
	"cmd/webhook",
}

// dnsdRoots are the packages that make up dnsd together with every module
// package they import, directly or not. Inside dnsd only the API-source
// package (see isAPISourcePackage) and clientGoImporters may import
// k8s.io/client-go/...; outside dnsd (the webhook side) client-go is not
// restricted.
var dnsdRoots = []string{
	"cmd/dnsd",
	servePkg,
}

// clientGoImporters may import k8s.io/client-go/... even when they are part
// of dnsd. Subpackages included.
var clientGoImporters = []string{
	"cmd/webhook",
	"pkg/policy/admission",
	"pkg/nodeprofile",
}

// apiSourcePkg is dnsd's API-source package: the only one in dnsd that
// imports client-go, kubeconfig loading included.
const apiSourcePkg = servePkg + "/apisource"

// clientsetPkg is client-go's clientset, its scheme included: dnsd never
// imports it (pkg/serve/apisource/client.go says why).
const clientsetPkg = "k8s.io/client-go/kubernetes"

// isAPISourcePackage reports whether rel is apiSourcePkg or below it (by
// name: filesource, or any other package whose name has "source" in it, is
// not).
func isAPISourcePackage(rel string) bool { return under(rel, apiSourcePkg) }

// miekgDNSImporters may import github.com/miekg/dns. Subpackages included.
var miekgDNSImporters = []string{
	servePkg,
}

// resolvconfAllowedImports are the non-standard-library import prefixes
// pkg/resolvconf may use (its own subpackages are allowed too).
var resolvconfAllowedImports = []string{
	"k8s.io/api",
	"k8s.io/apimachinery",
}

// configfilePkg decodes every versioned file, policies included; it is
// as pure as pkg/policy.
const configfilePkg = "pkg/configfile"

// policyAllowedImports are the non-standard-library import prefixes
// pkg/policy may use, apart from pkg/resolvconf, pkg/configfile and
// pkg/inputdir: it is pure (DESIGN.md, "Data flows"). Its admission adapter,
// pkg/policy/admission, is exempt.
var policyAllowedImports = []string{
	"k8s.io/api",
	"k8s.io/apimachinery",
	"sigs.k8s.io/yaml",
	"sigs.k8s.io/json",
	"go.yaml.in/yaml/v3",
}

// forbiddenPackageNames are package names that say nothing about their contents.
var forbiddenPackageNames = []string{"util", "utils", "common", "helpers"}

// pkg is the part of `go list -json` output the rules use. Imports are the
// non-test imports.
type pkg struct {
	ImportPath string
	Name       string
	Dir        string
	Imports    []string
	Error      *struct{ Err string }
}

type violation struct {
	rule, pkg, imp string
}

func (v violation) String() string {
	if v.imp == "" {
		return fmt.Sprintf("%s: %s", v.pkg, v.rule)
	}
	return fmt.Sprintf("%s imports %s: %s", v.pkg, v.imp, v.rule)
}

// under reports whether rel is p or inside p.
func under(rel, p string) bool { return rel == p || strings.HasPrefix(rel, p+"/") }

func underAny(rel string, ps []string) bool {
	return slices.ContainsFunc(ps, func(p string) bool { return under(rel, p) })
}

func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return imp != "C" && !strings.Contains(first, ".")
}

// check applies the rules to the packages of module modPath.
func check(modPath string, pkgs []pkg) []violation {
	var vs []violation
	add := func(rule, p, imp string) { vs = append(vs, violation{rule, p, imp}) }

	rel := func(importPath string) (string, bool) {
		if importPath == modPath {
			return ".", true
		}
		r, ok := strings.CutPrefix(importPath, modPath+"/")
		return r, ok
	}

	// Module-local import graph, for rules on indirect imports.
	local := map[string][]string{}
	for _, p := range pkgs {
		r, _ := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if ri, ok := rel(imp); ok {
				local[r] = append(local[r], ri)
			}
		}
	}
	// reach returns the first module package reachable from r (excluding r)
	// that satisfies target, with the direct import of r it goes through.
	reach := func(r string, target func(string) bool) (found, via string) {
		seen := map[string]bool{r: true}
		type item struct{ p, via string }
		queue := []item{}
		for _, d := range local[r] {
			queue = append(queue, item{d, d})
		}
		for len(queue) > 0 {
			it := queue[0]
			queue = queue[1:]
			if seen[it.p] {
				continue
			}
			seen[it.p] = true
			if target(it.p) {
				return it.p, it.via
			}
			for _, d := range local[it.p] {
				queue = append(queue, item{d, it.via})
			}
		}
		return "", ""
	}

	// dnsd: the roots and every module package they reach. The value is the
	// root that pulls the package in.
	dnsd := map[string]string{}
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok || !underAny(r, dnsdRoots) {
			continue
		}
		dnsd[r] = r
		stack := []string{r}
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, d := range local[cur] {
				if _, seen := dnsd[d]; !seen {
					dnsd[d] = r
					stack = append(stack, d)
				}
			}
		}
	}

	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		testSupport := underAny(r, testSupportPackages)

		if slices.Contains(forbiddenPackageNames, p.Name) {
			add(fmt.Sprintf("package name %q is forbidden (say what the package does)", p.Name), r, "")
		}

		for _, imp := range p.Imports {
			ri, local := rel(imp)
			switch {
			case under(r, resolvconfPkg) && !isStd(imp) &&
				!slices.ContainsFunc(resolvconfAllowedImports, func(a string) bool { return under(imp, a) }) &&
				!(local && under(ri, resolvconfPkg)):
				add("pkg/resolvconf imports only the standard library, k8s.io/api and k8s.io/apimachinery", r, imp)
			case under(r, policyPkg) && !under(r, policyPkg+"/admission") && !isStd(imp) &&
				!slices.ContainsFunc(policyAllowedImports, func(a string) bool { return under(imp, a) }) &&
				!(local && (under(ri, resolvconfPkg) || under(ri, configfilePkg) || under(ri, inputdirPkg) || under(ri, nodepoolPkg) || (under(ri, policyPkg) && !under(ri, policyPkg+"/admission")))):
				add("pkg/policy is pure: it imports only the standard library, k8s.io/api, k8s.io/apimachinery, sigs.k8s.io/yaml, sigs.k8s.io/json, go.yaml.in/yaml/v3, pkg/resolvconf, pkg/configfile, pkg/inputdir and pkg/nodepool", r, imp)
			case under(r, nodepoolPkg) && !isStd(imp) &&
				!slices.ContainsFunc(resolvconfAllowedImports, func(a string) bool { return under(imp, a) }) &&
				!(local && (under(ri, resolvconfPkg) || under(ri, nodepoolPkg))):
				add("pkg/nodepool imports only the standard library, k8s.io/api, k8s.io/apimachinery and pkg/resolvconf", r, imp)
			}
			if local && under(ri, cmdDir) {
				// cmd/X/... may use its own subpackages; nothing else imports cmd/.
				parts := strings.SplitN(ri, "/", 3)
				if len(parts) < 2 || !under(r, parts[0]+"/"+parts[1]) {
					add("nothing imports cmd/", r, imp)
				}
			}
			if local && underAny(ri, testSupportPackages) && !testSupport {
				add("test support packages are imported only by _test.go files", r, imp)
			}
			if under(imp, "github.com/miekg/dns") && !underAny(r, miekgDNSImporters) {
				add("only pkg/serve/... imports github.com/miekg/dns", r, imp)
			}
			if under(imp, "sigs.k8s.io/controller-runtime") && !underAny(r, controllerRuntimeImporters) && !testSupport {
				add("only pkg/policy/admission and cmd/webhook import sigs.k8s.io/controller-runtime", r, imp)
			}
			if root, inDNSD := dnsd[r]; inDNSD && under(imp, "k8s.io/client-go") &&
				!underAny(r, clientGoImporters) && !isAPISourcePackage(r) && !testSupport {
				part := "part of dnsd"
				if root != r {
					part += " through " + root
				}
				add("in dnsd ("+part+") only the API-source package (pkg/serve/apisource) and pkg/nodeprofile import client-go", r, imp)
			}
			if _, inDNSD := dnsd[r]; inDNSD && under(imp, clientsetPkg) && !testSupport {
				add("nothing in dnsd imports client-go's clientset or its scheme: they link and register every built-in API group", r, imp)
			}
		}

		// pkg/policy is never imported, directly or through another module
		// package, by pkg/resolvconf or pkg/serve/....
		if under(r, resolvconfPkg) || under(r, servePkg) {
			if found, via := reach(r, func(d string) bool { return under(d, policyPkg) }); found != "" {
				imp := modPath + "/" + via
				if found != via {
					imp += " (which leads to " + modPath + "/" + found + ")"
				}
				add("pkg/resolvconf and pkg/serve/... never import pkg/policy", r, imp)
			}
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].String() < vs[j].String() })
	return vs
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

func goCmd() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

func TestDependencyRules(t *testing.T) {
	root := repoRoot(t)

	modOut, err := exec.Command(goCmd(), "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	modPath := strings.TrimSpace(string(modOut))

	cmd := exec.Command(goCmd(), "list", "-e", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -json ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if p.Error != nil {
			// The build reports these; the rules still apply to what was read.
			t.Logf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list ./... found no packages")
	}
	for _, v := range check(modPath, pkgs) {
		t.Errorf("dependency rule broken: %s", v)
	}
	t.Logf("checked %d packages of %s", len(pkgs), modPath)
}

// TestRulesCatchViolations makes sure each rule can fail.
func TestRulesCatchViolations(t *testing.T) {
	const m = "example.com/m"
	P := func(rel, name string, imports ...string) pkg {
		return pkg{ImportPath: m + "/" + rel, Name: name, Imports: imports}
	}
	pkgs := []pkg{
		P("pkg/resolvconf", "resolvconf", "strings", "k8s.io/api/core/v1", "k8s.io/apimachinery/pkg/util/validation",
			"sigs.k8s.io/yaml", m+"/pkg/resolvconf/internal/x", m+"/pkg/other"),
		P("pkg/resolvconf/internal/x", "x", "fmt"),
		P("pkg/other", "other", m+"/pkg/policy"),
		P("pkg/policy", "policy", m+"/pkg/resolvconf", "sigs.k8s.io/yaml", "k8s.io/apimachinery/pkg/labels", "github.com/spf13/pflag", m+"/pkg/nodeprofile"),
		P("pkg/policy/admission", "admission", "sigs.k8s.io/controller-runtime/pkg/webhook", "k8s.io/client-go/rest", m+"/pkg/policy"),
		P("pkg/serve/cache", "cache", "github.com/miekg/dns", m+"/pkg/policy/admission"),
		P("pkg/serve/apisource", "apisource", "k8s.io/client-go/tools/cache", "github.com/miekg/dns", "k8s.io/client-go/kubernetes"),
		P("pkg/serve/forward", "forward", "k8s.io/client-go/rest"),
		P("pkg/nodeprofile", "nodeprofile", "k8s.io/client-go/rest"),
		P("pkg/manifest", "manifest", "k8s.io/client-go/kubernetes/scheme"),
		P("pkg/objects", "objects", "k8s.io/client-go/kubernetes/scheme"),
		P("pkg/serve/filesource", "filesource", m+"/pkg/objects", m+"/pkg/nodeprofile", "k8s.io/client-go/tools/cache"),
		P("cmd/webhook", "main", "sigs.k8s.io/controller-runtime", "k8s.io/client-go/kubernetes", m+"/cmd/webhook/app"),
		P("cmd/webhook/app", "app"),
		P("cmd/dnsd", "main", "github.com/miekg/dns", "k8s.io/client-go/tools/clientcmd", "sigs.k8s.io/controller-runtime/pkg/log", m+"/cmd/webhook/app"),
		P("internal/testenv", "testenv", "sigs.k8s.io/controller-runtime/pkg/envtest", "k8s.io/client-go/rest"),
		P("pkg/serve/cluster", "cluster", m+"/internal/testenv"),
		P("pkg/serve/dnstest", "dnstest", m+"/internal/testenv", m+"/pkg/serve/cluster"),
		P("pkg/common", "common"),
		P("pkg/nodepool", "nodepool", "sigs.k8s.io/yaml", m+"/pkg/resolvconf"),
	}
	var got []string
	for _, v := range check(m, pkgs) {
		got = append(got, v.String())
	}
	want := []string{
		"cmd/dnsd imports example.com/m/cmd/webhook/app: nothing imports cmd/",
		"cmd/dnsd imports github.com/miekg/dns: only pkg/serve/... imports github.com/miekg/dns",
		"cmd/dnsd imports k8s.io/client-go/tools/clientcmd: in dnsd (part of dnsd) only the API-source package (pkg/serve/apisource) and pkg/nodeprofile import client-go",
		"pkg/objects imports k8s.io/client-go/kubernetes/scheme: in dnsd (part of dnsd through pkg/serve/filesource) only the API-source package (pkg/serve/apisource) and pkg/nodeprofile import client-go",
		"pkg/objects imports k8s.io/client-go/kubernetes/scheme: nothing in dnsd imports client-go's clientset or its scheme: they link and register every built-in API group",
		"pkg/serve/apisource imports k8s.io/client-go/kubernetes: nothing in dnsd imports client-go's clientset or its scheme: they link and register every built-in API group",
		// Not the API-source package, though its name has "source" in it.
		"pkg/serve/filesource imports k8s.io/client-go/tools/cache: in dnsd (part of dnsd) only the API-source package (pkg/serve/apisource) and pkg/nodeprofile import client-go",
		"cmd/dnsd imports sigs.k8s.io/controller-runtime/pkg/log: only pkg/policy/admission and cmd/webhook import sigs.k8s.io/controller-runtime",
		"pkg/common: package name \"common\" is forbidden (say what the package does)",
		"pkg/nodepool imports sigs.k8s.io/yaml: pkg/nodepool imports only the standard library, k8s.io/api, k8s.io/apimachinery and pkg/resolvconf",
		"pkg/resolvconf imports example.com/m/pkg/other (which leads to example.com/m/pkg/policy): pkg/resolvconf and pkg/serve/... never import pkg/policy",
		"pkg/resolvconf imports example.com/m/pkg/other: pkg/resolvconf imports only the standard library, k8s.io/api and k8s.io/apimachinery",
		"pkg/resolvconf imports sigs.k8s.io/yaml: pkg/resolvconf imports only the standard library, k8s.io/api and k8s.io/apimachinery",
		"pkg/serve/cache imports example.com/m/pkg/policy/admission: pkg/resolvconf and pkg/serve/... never import pkg/policy",
		"pkg/serve/cluster imports example.com/m/internal/testenv: test support packages are imported only by _test.go files",
		"pkg/serve/forward imports k8s.io/client-go/rest: in dnsd (part of dnsd) only the API-source package (pkg/serve/apisource) and pkg/nodeprofile import client-go",
		"pkg/policy imports example.com/m/pkg/nodeprofile: pkg/policy is pure: it imports only the standard library, k8s.io/api, k8s.io/apimachinery, sigs.k8s.io/yaml, sigs.k8s.io/json, go.yaml.in/yaml/v3, pkg/resolvconf, pkg/configfile, pkg/inputdir and pkg/nodepool",
		"pkg/policy imports github.com/spf13/pflag: pkg/policy is pure: it imports only the standard library, k8s.io/api, k8s.io/apimachinery, sigs.k8s.io/yaml, sigs.k8s.io/json, go.yaml.in/yaml/v3, pkg/resolvconf, pkg/configfile, pkg/inputdir and pkg/nodepool",
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
