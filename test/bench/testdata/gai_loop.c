/*
 * gai_loop: glibc getaddrinfo(3) in a loop, as a pod's application resolves
 * names: AF_UNSPEC (glibc sends A and AAAA), the pod's /etc/resolv.conf
 * (search list, ndots) doing the walk. The search-walk scenario of the DNS
 * benchmark (test/bench) runs it inside a network namespace whose address is
 * a Pod's IP.
 *
 * usage: gai_loop SECONDS MAXCOUNT THREADS NAME...
 * Each thread cycles over the names until SECONDS have passed or MAXCOUNT
 * lookups were made in all. It prints one line:
 *   lookups=N failures=F seconds=S p50_ms=X p99_ms=Y p999_ms=Z
 */
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static double seconds_limit;
static long maxcount;
static int nnames;
static char **names;
static long counter, failures;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct timespec start;
static double *lat; /* seconds per lookup, up to maxcount */

static double since(struct timespec *t0) {
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) + (now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void *worker(void *arg) {
	long i = (long)arg;
	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	for (;;) {
		if (since(&start) >= seconds_limit)
			return NULL;
		pthread_mutex_lock(&mu);
		long k = counter < maxcount ? counter++ : -1;
		pthread_mutex_unlock(&mu);
		if (k < 0)
			return NULL;
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		struct addrinfo *res = NULL;
		int rc = getaddrinfo(names[(i + k) % nnames], NULL, &hints, &res);
		lat[k] = since(&t0);
		if (rc == 0)
			freeaddrinfo(res);
		else {
			pthread_mutex_lock(&mu);
			failures++;
			pthread_mutex_unlock(&mu);
		}
	}
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: gai_loop SECONDS MAXCOUNT THREADS NAME...\n");
		return 2;
	}
	seconds_limit = atof(argv[1]);
	maxcount = atol(argv[2]);
	int threads = atoi(argv[3]);
	names = argv + 4;
	nnames = argc - 4;
	if (seconds_limit <= 0 || maxcount <= 0 || threads <= 0 || threads > 256) {
		fprintf(stderr, "gai_loop: bad arguments\n");
		return 2;
	}
	lat = calloc(maxcount, sizeof *lat);
	if (!lat)
		return 1;
	pthread_t th[256];
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double el = since(&start);
	long n = counter;
	qsort(lat, n, sizeof *lat, cmp);
	double p50 = n ? lat[(long)(0.5 * (n - 1))] : 0, p99 = n ? lat[(long)(0.99 * (n - 1))] : 0,
	       p999 = n ? lat[(long)(0.999 * (n - 1))] : 0;
	printf("lookups=%ld failures=%ld seconds=%.3f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f\n", n, failures, el,
	       p50 * 1e3, p99 * 1e3, p999 * 1e3);
	return 0;
}
