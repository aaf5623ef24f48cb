package manifest

// SetMaxInput lowers the input size cap for a test; it returns the old one.
func SetMaxInput(n int64) int64 {
	old := maxInput
	maxInput = n
	return old
}

// SetMaxDocument lowers the document size cap for a test; it returns the old one.
func SetMaxDocument(n int64) int64 {
	old := maxDocument
	maxDocument = n
	return old
}
