package main

import (
	"runtime/debug"

	"github.com/walgate/walgate/gateway"
)

func version() string {
	v := gateway.Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}
