package protocol

// The routes of protocol v1 as patterns, in the router's syntax: ":name"
// is one path segment, "*" the rest of the path. The gateway registers
// exactly these; the *Path functions fill them in for the client.
const (
	RouteWhoAmI       = WhoAmIPath
	RouteWAL          = "/" + Version + "/clusters/:cluster/wal/:name"
	RouteBackups      = "/" + Version + "/clusters/:cluster/backups"
	RouteBackup       = RouteBackups + "/:name"
	RouteBackupCommit = RouteBackup + "/commit"
	RouteBackupFile   = RouteBackup + "/files/*"
	RouteDrills       = "/" + Version + "/clusters/:cluster/drills"
	RouteHealth       = "/" + Version + "/clusters/:cluster/health"
	RouteDelete       = "/" + Version + "/clusters/:cluster/delete"
	RouteKeys         = "/" + Version + "/clusters/:cluster/keys"
)
