package redisstore

// The scripts, so that tests can name them in round-trip counts.
var (
	ReadScript  = readScript
	WriteScript = writeScript
)
