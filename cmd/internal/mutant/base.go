package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// changedLines is, per file of the package directory dir (named relative
// to it, as gremlins names mutants' files), the lines that differ from
// commit base in the working tree: the lines a review of the change since
// base would read. Deleted lines leave nothing to mutate.
func changedLines(dir, base string) (map[string]map[int]bool, error) {
	cmd := exec.Command("git", "diff", "--no-color", "--no-ext-diff", "-U0", "--relative", base, "--", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git diff %s in %s: %v: %s", base, dir, err, strings.TrimSpace(stderr.String()))
	}
	return parseDiff(out)
}

// parseDiff reads a unified diff with no context (-U0): the new side's
// line numbers of each hunk, per file.
func parseDiff(diff []byte) (map[string]map[int]bool, error) {
	changed := map[string]map[int]bool{}
	var file string
	sc := bufio.NewScanner(bytes.NewReader(diff))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "+++ "):
			file = ""
			if name, ok := strings.CutPrefix(line, "+++ b/"); ok {
				file = name
			}
		case strings.HasPrefix(line, "@@ ") && file != "":
			// @@ -a[,b] +c[,d] @@
			f := strings.Fields(line)
			if len(f) < 3 || !strings.HasPrefix(f[2], "+") {
				return nil, fmt.Errorf("diff: bad hunk header %q", line)
			}
			start, count := f[2][1:], "1"
			if i := strings.IndexByte(start, ','); i >= 0 {
				start, count = start[:i], start[i+1:]
			}
			c, err1 := strconv.Atoi(start)
			d, err2 := strconv.Atoi(count)
			if err1 != nil || err2 != nil || c < 0 || d < 0 {
				return nil, fmt.Errorf("diff: bad hunk header %q", line)
			}
			if changed[file] == nil {
				changed[file] = map[int]bool{}
			}
			for l := c; l < c+d; l++ {
				changed[file][l] = true
			}
		}
	}
	return changed, sc.Err()
}
