// Package configfile reads poddns's versioned files — DNSDConfig,
// WebhookConfig, NodeProfile, PolicyTest and DNSPolicy documents — one way,
// so that every kind is as strict as the strictest and every error says
// where it is.
//
// A file is split into its YAML documents (JSON is YAML) at "---" lines, as
// the Kubernetes YAML reader splits them; empty documents do not count. A
// document is decoded strictly, as the API server's strict field validation
// decodes: field names match case-sensitively, unknown and duplicate fields
// are errors, and so is a value of the wrong type. Every problem is an
// *[Error] naming the file, the document, the line and the field path
// (spec.actions.ndots, forward.stubs[0].zone), so that a user can go
// straight to it.
//
// A configuration file ([Load], [DecodeFile]) holds exactly one document of
// one apiVersion and kind: a second document is an error, not ignored. It
// is decoded over the values already in the struct (the defaults), so a
// field the file leaves out keeps its default and a field the file sets —
// to zero or empty too — has that value. Paths the file names (a [Paths]
// implementation lists them) are taken relative to the file's directory.
// Flags come last ([Load]'s bind step): bound onto the same struct fields,
// an explicitly given flag wins over the file, zero and empty included.
// Validation runs on the result.
//
// Durations in files are strings ("5s", "1m"): use metav1.Duration. Record
// TTLs are integer seconds, as in CoreDNS.
package configfile
