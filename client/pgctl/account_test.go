package pgctl

import (
	"os/user"
	"strconv"
	"testing"
)

// TestLookupGetent: the fallback walgate-client's static build uses for an
// account os/user does not find in /etc/passwd gives the same uid and gid
// as the C library's lookup (this test binary is built with cgo).
func TestLookupGetent(t *testing.T) {
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the test machine has a postgres account: %v", err)
	}
	uid, gid, err := lookupGetent("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(uid) != u.Uid || strconv.Itoa(gid) != u.Gid {
		t.Fatalf("getent: uid %d gid %d; os/user: %s %s", uid, gid, u.Uid, u.Gid)
	}
	if _, _, err := lookupGetent("walgate-no-such-account"); err == nil {
		t.Fatal("an unknown account was found")
	}
	if _, _, err := lookupUser("walgate-no-such-account"); err == nil {
		t.Fatal("an unknown account was found")
	}
}

func TestParseGetentPasswd(t *testing.T) {
	for _, c := range []struct {
		out      string
		uid, gid int
		ok       bool
	}{
		{"postgres:x:104:110:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n", 104, 110, true},
		{"postgres:*:2001:2001::/home/postgres:/bin/sh", 2001, 2001, true},
		{"postgresx:x:104:110::/:/bin/sh\n", 0, 0, false}, // another account
		{"postgres:x:104\n", 0, 0, false},
		{"postgres:x:abc:110::/:/bin/sh\n", 0, 0, false},
		{"postgres:x:-1:110::/:/bin/sh\n", 0, 0, false},
		{"", 0, 0, false},
	} {
		uid, gid, err := parseGetentPasswd("postgres", c.out)
		if (err == nil) != c.ok || c.ok && (uid != c.uid || gid != c.gid) {
			t.Errorf("%q: uid %d gid %d err %v", c.out, uid, gid, err)
		}
	}
}
