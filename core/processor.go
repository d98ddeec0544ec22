package core

// This file declares the Processor API used by the edge. The implementation
// (schema tables for the 27 types, strict checks, canonical encoder) lives in
// schema.go / validate.go / encode.go.

// Outcome is what became of one event given to Processor.Add.
type Outcome uint8

const (
	Accepted Outcome = iota // validated and appended to the batch
	Rejected                // invalid; see the Reason
	Filtered                // valid but dropped by channel gating
)

// Reason tells why an event was rejected: the offending field (dotted path,
// e.g. "pageMeta.viewport"; "" for the event as a whole) and what is wrong.
// Both are static strings, so rejecting allocates nothing.
type Reason struct {
	Field string
	Msg   string
}

// String renders the reason as "field: msg" (or msg alone).
func (r Reason) String() string {
	if r.Field == "" {
		return r.Msg
	}
	return r.Field + ": " + r.Msg
}

// RequestInfo is what the server decided for the whole request; the Processor
// stamps it on every event.
type RequestInfo struct {
	ProjectID string   // overwrites every event's projectId
	VisitorID [32]byte // lowercase hex; overwrites visitorId
	Browser   string   // coarse browser family, stamped on session_start.device.browser
	OS        string   // coarse OS family, stamped on session_start.device.os
	Channels  Channels // gating settings of the project
}
