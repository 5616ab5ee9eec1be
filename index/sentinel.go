package index

import "github.com/walgate/walgate/index/layout"

// BackupInfoOf is what the catalog keeps of backup name from its sentinel
// (which must pass its Check): at commit, and again at a rebuild.
func BackupInfoOf(name string, s layout.Sentinel) BackupInfo {
	return BackupInfo{Kind: s.Kind(), DeltaFrom: s.DeltaFrom, DeltaFullName: s.DeltaFullName, DeltaCount: s.DeltaCount,
		StartLSN: *s.LSN, FinishLSN: *s.FinishLSN, Timeline: layout.BackupTimeline(name),
		StartTime: s.StartTime, FinishTime: s.FinishTime, UncompressedSize: s.UncompressedSize, PgVersion: s.PgVersion,
		SystemIdentifier: s.SystemIdentifier, Hostname: s.Hostname, Permanent: s.IsPermanent}
}
