package resolvconf

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits of the stub resolvers that read the file inside containers. Neither
// the API server nor kubelet checks them: kubelet accepts search lines of up
// to 2048 characters and 32 domains (MaxDNSSearchListChars,
// MaxDNSSearchPaths).
const (
	// muslLineBuffer is the buffer musl libc reads resolv.conf lines into
	// (fgets, 256 bytes): a line that does not fit, newline included, is
	// skipped whole.
	muslLineBuffer = 256
	// legacyGlibcSearchPaths and legacyGlibcSearchChars are glibc's limits
	// before 2.26 (MAXDNSRCH and the 256-byte dnsrch buffer): later domains
	// are dropped.
	legacyGlibcSearchPaths = 6
	legacyGlibcSearchChars = 255
	// maxNdots is the cap both glibc (RES_MAXNDOTS) and musl put on ndots.
	maxNdots = 15
)

// ClientNotes says, one sentence each, where the stub resolvers in
// containers read c differently from what it says: musl libc (Alpine
// images) skips lines of 256 bytes or more, glibc before 2.26 keeps only the
// first 6 search domains and 255 characters of them, and both cap ndots at
// 15, and glibc before 2.36 and musl ignore options no-aaaa. The notes are
// advice, not errors: kubelet writes the file as it is.
// They come in a fixed order; nil when there is nothing to say.
func ClientNotes(c Config) []string {
	var notes []string
	if len(c.Searches) > 0 {
		chars := joinedLen(c.Searches)
		line := len("search ") + chars + 1 // with the newline
		if line >= muslLineBuffer {
			notes = append(notes, fmt.Sprintf("musl libc (e.g. Alpine images) ignores the search line: it is %d bytes with its newline, and musl skips lines of %d bytes or more; short names are then looked up without any search domain", line, muslLineBuffer))
		}
		if n := len(c.Searches); n > legacyGlibcSearchPaths || chars > legacyGlibcSearchChars {
			notes = append(notes, fmt.Sprintf("glibc before 2.26 (e.g. CentOS 7 images) uses only the first %d search domains and %d characters of them; this list has %d domains, %d characters", legacyGlibcSearchPaths, legacyGlibcSearchChars, n, chars))
		}
	}
	if len(c.Options) > 0 {
		line := len("options ") + joinedLen(c.Options) + 1
		if line >= muslLineBuffer {
			notes = append(notes, fmt.Sprintf("musl libc (e.g. Alpine images) ignores the options line: it is %d bytes with its newline, and musl skips lines of %d bytes or more; ndots, timeout and attempts then keep musl's defaults", line, muslLineBuffer))
		}
	}
	for _, o := range c.Options {
		if o == "no-aaaa" {
			notes = append(notes, "options no-aaaa is read by glibc 2.36 and later only: musl libc (e.g. Alpine images) and older glibc ignore it and still ask for AAAA records (dnsd's aaaa filter answers them NODATA itself, for every client)")
			continue
		}
		v, ok := strings.CutPrefix(o, "ndots:")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(v); err == nil && n > maxNdots {
			notes = append(notes, fmt.Sprintf("ndots:%d acts as ndots:%d: glibc and musl cap ndots at %d", n, maxNdots, maxNdots))
		}
	}
	return notes
}
