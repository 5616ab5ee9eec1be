// Package rebuild writes a fresh catalog from what one object store holds
// (`walgate index rebuild --from NAME`): the catalog is a cache of the
// stores. It reads WAL from the metadata walgate stores with each object,
// or, for objects stock WAL-G wrote, from their names and bytes (decoded
// with client/codec, the shared codec leaf); it catalogs a backup only
// when its sentinel is there, and carries tokens and drill reports over
// from the previous catalog.
//
// It must never write to a store or delete anything from it (unknown,
// damaged and incomplete objects are reported and left alone), never run
// while a gateway holds the catalog, and never change the catalog unless
// the whole rebuild succeeded (the new one is swapped in by a rename).
package rebuild
