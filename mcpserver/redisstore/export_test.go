package redisstore

// The scripts, so that tests can name them in round-trip counts.
var (
	OpenScript   = openScript
	AppendScript = appendScript
	EndScript    = endScript
	ReadScript   = readScript
	WriteScript  = writeScript
)
