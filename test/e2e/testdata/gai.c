/*
 * gai: the musl client of the e2e tests. It resolves argv[1] with
 * getaddrinfo(3) the way an application in an Alpine-based container does
 * (AF_UNSPEC, so musl asks for A and AAAA in parallel) and prints what it got:
 *
 *   canon <canonical name>
 *   addr <address>        one line per address, in getaddrinfo's order
 *   error <code> <text>   instead, when the lookup fails (exit status 2)
 *
 * The test compiles it with `musl-gcc -static` into a temporary directory.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct addrinfo hints, *res, *ai;
	char buf[INET6_ADDRSTRLEN];
	const void *addr;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 64;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM; /* one entry per address */
	hints.ai_flags = AI_CANONNAME;
	rc = getaddrinfo(argv[1], NULL, &hints, &res);
	if (rc != 0) {
		printf("error %d %s\n", rc, gai_strerror(rc));
		return 2;
	}
	printf("canon %s\n", res->ai_canonname ? res->ai_canonname : "");
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET6)
			addr = &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		else
			addr = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
		if (inet_ntop(ai->ai_family, addr, buf, sizeof buf) == NULL) {
			perror("inet_ntop");
			return 3;
		}
		printf("addr %s\n", buf);
	}
	freeaddrinfo(res);
	return 0;
}
