package completion

// AddSaved is Metrics.addSaved for the external tests.
func AddSaved(m *Metrics, ns string, n int) { m.addSaved(ns, n) }
