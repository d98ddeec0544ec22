// Package core holds the event model of Uptimizr Edge: the 27 event types, their
// validation and bounds, the canonical encoding stored downstream, the validation
// and canonical encoding of scene representations (with the same number, text and
// quoting rules), the cookieless visitor hash, channel gating, and the small
// interfaces (Filter, Sink) that the other packages implement. It uses the standard library only and imports none of
// the project's other packages.
package core
