// Package admin is the gateway's admin socket, both ends: the server the
// running gateway serves on DATA/admin.sock (owner-only, HTTP over a Unix
// socket) and the client the admin verbs (`walgate token`, `status`,
// `lifecycle`) use to reach it, and token creation.
//
// It owns the socket's routes and their JSON bodies. It must never listen
// on a network address (access is by file permission on the socket), never
// print a token secret except in the answer to the one who created it, and
// never carry work of its own: each route calls the catalog, the fleet,
// the stores or the lifecycle executor.
package admin
