package client

import (
	"sort"
	"strings"

	"github.com/walgate/walgate/client/codec"
)

// otherWALGATENames are WALGATE_* variables the client reads that EnvVars
// folds into another entry, WALGATE_CPUPROFILE (a CPU profile of the run,
// for performance work: docs/architecture.md), and the ones walgate's own build and test
// tooling sets (they reach the client through the environment of a test
// run, and mean nothing to it).
var otherWALGATENames = []string{
	"WALGATE_TOKEN_FILE", "WALGATE_ENCRYPTION_KEY_FILE", "WALGATE_CLIENT_KEY",
	"WALGATE_CPUPROFILE", "WALGATE_TOOLS", "WALGATE_SOAK",
}

// toolingPrefixes name families of variables of walgate's test tooling.
var toolingPrefixes = []string{"WALGATE_TEST_", "WALGATE_PGTEST_"}

// readWALGNames are the WAL-G variables the client reads; a WALG_* name
// close to one of them is taken for a typo.
var readWALGNames = []string{"WALG_LIBSODIUM_KEY_PATH"}

// knownEnvNames returns the WALGATE_* and the WALG_* names the client reads.
func knownEnvNames() (walgate, walg []string) {
	walgate = append(walgate, otherWALGATENames...)
	walg = append(walg, readWALGNames...)
	for _, v := range EnvVars {
		if strings.HasPrefix(v.Name, "WALGATE_") {
			walgate = append(walgate, v.Name)
		}
		if v.Also != "" {
			walg = append(walg, v.Also)
		}
	}
	return walgate, walg
}

// walgNearMiss is the largest edit distance at which an unknown WALG_*
// name counts as a misspelling of one walgate reads.
const walgNearMiss = 2

// CheckEnvironment refuses variables that look meant for the client but
// that it does not read, so that a misspelt key never turns into silent
// plaintext: every unknown WALGATE_* name, and a WALG_* name within a
// couple of typing errors of a WAL-G name the client reads
// (WALG_LIBSODIUM_KEYY). Other WALG_* names are WAL-G's business (a host
// moving from WAL-G keeps many) and are ignored. environ is os.Environ's
// "NAME=value" list; the error (a *ConfigError) names the closest known
// variable.
func CheckEnvironment(environ []string) error {
	walgate, walg := knownEnvNames()
	isWALGATE := make(map[string]bool, len(walgate))
	for _, n := range walgate {
		isWALGATE[n] = true
	}
	var bad []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "WALGATE_"):
			if isWALGATE[name] || hasAnyPrefix(name, toolingPrefixes) {
				continue
			}
			bad = append(bad, name+" (did you mean "+closest(name, walgate)+"?)")
		case strings.HasPrefix(name, "WALG_"):
			near := closest(name, walg)
			if d := editDistance(name, near); d > 0 && d <= walgNearMiss {
				bad = append(bad, name+" (did you mean "+near+"?)")
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return cfgErr("unknown environment variable %s: walgate-client does not read it, and a misspelt setting (an encryption key above all) must not be ignored; correct or unset it (see walgate-client --help)", strings.Join(bad, ", "))
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// closest returns the candidate with the smallest edit distance to name
// (the first of equals).
func closest(name string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(name, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// loadKeyPolicy reads the old keys of a rotation and the plaintext policy
// into c, after c.Key.
func loadKeyPolicy(getenv func(string) string, c *Config) error {
	b, err := envBool("WALGATE_ALLOW_PLAINTEXT_READ", getenv("WALGATE_ALLOW_PLAINTEXT_READ"))
	if err != nil {
		return err
	}
	c.AllowPlaintextRead = b
	old := getenv("WALGATE_ENCRYPTION_OLD_KEYS")
	if old == "" {
		return nil
	}
	if c.Key == nil {
		return cfgErr("WALGATE_ENCRYPTION_OLD_KEYS is set but no current key is: set WALGATE_ENCRYPTION_KEY to the key new objects are encrypted with")
	}
	transform := getenv("WALGATE_ENCRYPTION_KEY_TRANSFORM")
	if transform == "" {
		transform = getenv("WALG_LIBSODIUM_KEY_TRANSFORM")
	}
	for i, v := range strings.Split(old, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		k, err := codec.ParseKey(v, transform)
		if err != nil {
			return cfgErr("WALGATE_ENCRYPTION_OLD_KEYS, key %d: %v", i+1, err)
		}
		c.OldKeys = append(c.OldKeys, k)
	}
	return nil
}
