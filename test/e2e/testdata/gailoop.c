/*
 * gailoop: the load client of the node-local upgrade test. It resolves
 * argv[1] with getaddrinfo(3) (AF_UNSPEC: A and AAAA) every argv[3]
 * milliseconds (a fixed schedule: a slow lookup is caught up on, not added
 * to the interval) until argv[2] seconds have passed, as a long-lived
 * application does, and prints one summary line:
 *
 *   lookups N failed F slow S max_ms M
 *   at MS:slow|failed ...   when and how (ms since the start) it went wrong
 *
 * slow counts lookups that took 900 ms or more: with `options timeout:1`
 * in resolv.conf those needed a retry. It is built twice, with gcc
 * (glibc) and with musl-gcc -static. Exit status 0 even when lookups fail:
 * the test judges the counts.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct addrinfo hints, *res;
	long lookups = 0, failed = 0, slow = 0;
	double start, end, t0, took, max = 0;
	struct timespec pause;
	double next, wait;
	char at[4096] = "";
	size_t used = 0;
	int interval;

	if (argc != 4) {
		fprintf(stderr, "usage: %s NAME SECONDS INTERVAL_MS\n", argv[0]);
		return 64;
	}
	interval = atoi(argv[3]);
	start = now_ms();
	next = start;
	end = start + atof(argv[2]) * 1000.0;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	while (now_ms() < end) {
		t0 = now_ms();
		lookups++;
		int rc = getaddrinfo(argv[1], NULL, &hints, &res);
		if (rc != 0)
			failed++;
		else
			freeaddrinfo(res);
		took = now_ms() - t0;
		if (took >= 900)
			slow++;
		if ((rc != 0 || took >= 900) && used < sizeof at - 64)
			used += snprintf(at + used, sizeof at - used, " %.0f:%s(%.0fms)", t0 - start, rc != 0 ? "failed" : "slow", took);
		if (took > max)
			max = took;
		next += interval;
		wait = next - now_ms();
		if (wait > 0) {
			pause.tv_sec = (time_t)(wait / 1000);
			pause.tv_nsec = (long)((wait - pause.tv_sec * 1000.0) * 1e6);
			nanosleep(&pause, NULL);
		}
	}
	printf("lookups %ld failed %ld slow %ld max_ms %.0f\nat%s\n", lookups, failed, slow, max, at);
	fflush(stdout);
	return 0;
}
