package codec

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Level is how hard zstd works on an object: one of klauspost/compress's
// four encoder levels. It changes the bytes written, never their
// readability: every level writes a standard Zstandard frame, which any
// zstd reader (walgate's of every version, WAL-G's, the zstd tool) reads
// alike. The other methods have one setting each (see compression.go) and
// ignore it.
type Level int

// The levels, by the names WALGATE_COMPRESSION_LEVEL takes. The zero
// value is LevelDefault.
const (
	LevelDefault Level = iota // zstd.SpeedDefault, about zstd's level 3 (WAL-G's setting)
	LevelFastest              // zstd.SpeedFastest, about level 1
	LevelBetter               // zstd.SpeedBetterCompression, about level 7
	LevelBest                 // zstd.SpeedBestCompression, about level 11
)

var levelNames = [...]string{LevelDefault: "default", LevelFastest: "fastest", LevelBetter: "better", LevelBest: "best"}

// ParseLevel returns the level called s: fastest, default, better or best.
func ParseLevel(s string) (Level, error) {
	for l, name := range levelNames {
		if s == name {
			return Level(l), nil
		}
	}
	return 0, fmt.Errorf("unknown compression level %q: use fastest, default, better or best", s)
}

// String returns the level's name, as ParseLevel takes it.
func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// zstd returns the zstd encoder level; a level out of range is the default.
func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelFastest:
		return zstd.SpeedFastest
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedDefault
}
