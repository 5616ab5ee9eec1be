// Package jsondoc checks the JSON walgate prints against its documented
// schema (docs/json.md) and its one style: snake_case keys, no empty keys,
// no Go zero times. Tests of the commands call it on their real output, so
// the documentation and the code cannot drift apart.
package jsondoc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Key is one documented key path: "backends[].name"; a path ending in
// ".*" stands for a map whose keys are data (storage classes).
type Key struct {
	Path     string
	Optional bool
}

var (
	rowKey   = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|([^|]*)\\|")
	snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Section reads the keys of the table under the heading "## title" of the
// Markdown file doc. A row's type column containing "optional" marks a key
// that may be absent.
func Section(doc, title string) ([]Key, error) {
	f, err := os.Open(doc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var keys []Key
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(strings.TrimPrefix(line, "## ")) == title
			continue
		}
		if !in {
			continue
		}
		if m := rowKey.FindStringSubmatch(line); m != nil {
			keys = append(keys, Key{Path: m[1], Optional: strings.Contains(m[2], "optional")})
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no section %q with a key table", doc, title)
	}
	return keys, sc.Err()
}

// Paths lists the key paths of a JSON document, and the problems of style
// it has (keys not snake_case, empty keys, Go zero times). Keys below a
// path in data (a map whose keys are values) are not listed.
func Paths(data []byte, dataMaps map[string]bool) ([]string, []string, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	var problems []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, el := range x {
				if dataMaps[path] {
					if k == "" {
						problems = append(problems, fmt.Sprintf("%s: empty key", path))
					}
					walk(path+".*", el)
					continue
				}
				if !snakeKey.MatchString(k) {
					problems = append(problems, fmt.Sprintf("%s: key %q is not snake_case", path, k))
				}
				p := k
				if path != "" {
					p = path + "." + k
				}
				seen[p] = true
				walk(p, el)
			}
		case []any:
			for _, el := range x {
				walk(path+"[]", el)
			}
		case string:
			if strings.HasPrefix(x, "0001-01-01") {
				problems = append(problems, fmt.Sprintf("%s: Go zero time %q (omit it)", path, x))
			}
		}
	}
	walk("", v)
	var out []string
	for p := range seen {
		out = append(out, strings.TrimPrefix(p, "[]."))
	}
	sort.Strings(out)
	return out, problems, nil
}

// Check compares a command's real JSON output with its documented keys:
// every key printed is documented, every documented key that is not
// optional is printed, and the style holds. It returns every mismatch.
func Check(doc, title string, data []byte) []string {
	keys, err := Section(doc, title)
	if err != nil {
		return []string{err.Error()}
	}
	documented := map[string]Key{}
	maps := map[string]bool{}
	for _, k := range keys {
		documented[k.Path] = k
		if base, ok := strings.CutSuffix(k.Path, ".*"); ok {
			maps[base] = true
			if !strings.HasPrefix(base, "[]") {
				maps["[]."+base] = true
			}
		}
	}
	paths, problems, err := Paths(data, maps)
	if err != nil {
		return []string{err.Error()}
	}
	printed := map[string]bool{}
	for _, p := range paths {
		printed[p] = true
		if _, ok := documented[p]; !ok {
			problems = append(problems, fmt.Sprintf("%s: printed but not documented in %s (%s)", p, doc, title))
		}
	}
	for _, k := range keys {
		if !k.Optional && !strings.HasSuffix(k.Path, ".*") && !printed[k.Path] {
			problems = append(problems, fmt.Sprintf("%s: documented in %s (%s) but not printed", k.Path, doc, title))
		}
	}
	return problems
}
