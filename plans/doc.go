// Package plans holds the data a plan is made of: what haplan would change,
// why, on which host, and digests of the state each decision was based on.
//
// A Plan is pure data. The engine produces it from probed state, every view
// (text, Markdown, JSON) renders it, a saved plan file is its encoding, and
// apply executes exactly its changes. Nothing in a Plan is secret: steps put
// digests of secret material into Details (marked Sensitive) and into the
// probe digests, never the values themselves.
//
// The JSON encoding is versioned by FormatVersion; Decode refuses a plan
// written in a format it does not understand rather than guessing.
package plans
