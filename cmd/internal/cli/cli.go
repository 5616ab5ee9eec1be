package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ErrHelp is returned by Parse after it printed the verb's help: the
// command exits 0.
var ErrHelp = flag.ErrHelp

// UsageError is a command line that cannot be run as written: the command
// prints it and exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef makes a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// IsUsage reports whether err is a UsageError.
func IsUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}

// ExitCode is one documented exit status of a command.
type ExitCode struct {
	Code    int
	Meaning string
}

// Help is the text VERB --help prints.
type Help struct {
	// Usage is the synopsis, e.g. "walgate-client backup-push PGDATA [--full | --delta]".
	Usage string
	// Text says what the verb does, for a DBA.
	Text string
	// Exits are the verb's exit codes.
	Exits []ExitCode
}

// Write prints the help with the flags of fs (which may be nil).
func (h Help) Write(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n", h.Usage)
	if h.Text != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(h.Text, "\n"))
	}
	if fs != nil {
		var names []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f) })
		if len(names) > 0 {
			fmt.Fprintf(w, "\nFlags:\n")
			for _, f := range names {
				arg := ""
				if !isBool(f) {
					arg, _ = flag.UnquoteUsage(f)
					if arg == "" {
						arg = "value"
					}
					arg = " " + strings.ToUpper(arg)
				}
				fmt.Fprintf(w, "  --%s%s\n", f.Name, arg)
				usage := f.Usage
				if _, u := flag.UnquoteUsage(f); u != "" {
					usage = u
				}
				if usage != "" {
					fmt.Fprintf(w, "      %s", usage)
				}
				if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
					fmt.Fprintf(w, " (default %s)", f.DefValue)
				}
				fmt.Fprintln(w)
			}
		}
	}
	if len(h.Exits) > 0 {
		fmt.Fprintf(w, "\nExit codes:\n")
		for _, e := range h.Exits {
			fmt.Fprintf(w, "  %-3d %s\n", e.Code, e.Meaning)
		}
	}
}

// NewFlags makes a flag set for a verb that prints nothing by itself:
// Parse reports every problem as an error.
func NewFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Parse parses args against fs with flags anywhere among the arguments
// ("--" ends the flags) and returns the positional arguments in order.
// "-h" or "--help" prints help with fs's flags to stdout and returns
// ErrHelp. Flags are written --name, -name, --name=value or --name value;
// a flag fs does not know is a UsageError naming the closest known flag.
func Parse(fs *flag.FlagSet, h Help, args []string, stdout io.Writer) ([]string, error) {
	if WantsHelp(args) {
		h.Write(stdout, fs)
		return nil, ErrHelp
	}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || isNumber(a) {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		f := fs.Lookup(name)
		if f == nil || name == "" {
			return nil, unknownFlag(fs, name)
		}
		if isBool(f) {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, Usagef("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return nil, Usagef("invalid value %q for flag --%s: %v", value, name, err)
		}
	}
	return pos, nil
}

// WantsHelp reports whether args ask for help (-h, -help or --help before
// any "--").
func WantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func unknownFlag(fs *flag.FlagSet, name string) error {
	var known []string
	fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
	if s := Closest(name, known); s != "" {
		return Usagef("unknown flag --%s; did you mean --%s? (see %s --help)", name, s, fs.Name())
	}
	if len(known) == 0 {
		return Usagef("unknown flag --%s: %s takes no flags", name, fs.Name())
	}
	sort.Strings(known)
	return Usagef("unknown flag --%s; known flags: --%s", name, strings.Join(known, ", --"))
}

// Closest returns the candidate nearest to word by edit distance, or ""
// when none is near enough to be a likely misspelling.
func Closest(word string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		d := distance(strings.ToLower(word), strings.ToLower(c))
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := 2
	if n := len(word) / 3; n > limit {
		limit = n
	}
	if best == "" || bestDist > limit || bestDist >= len(best) {
		return ""
	}
	return best
}

// distance is the Damerau-Levenshtein (optimal string alignment) distance.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isNumber reports whether a looks like a negative number, an argument
// rather than a flag.
func isNumber(a string) bool {
	return strings.Trim(a[1:], "0123456789.") == ""
}
