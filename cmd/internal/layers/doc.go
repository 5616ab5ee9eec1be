// Package layers holds the test that enforces walgate's layering: which
// package may import which (DESIGN.md, "Layers"), and that walgate-client
// links no cloud SDK, no HTTP server framework and no catalog engine.
package layers
