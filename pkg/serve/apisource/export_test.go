package apisource

// SetPageSize sets the page size of paged lists until the returned function
// restores it.
func SetPageSize(n int64) (restore func()) {
	old := pageSize
	pageSize = n
	return func() { pageSize = old }
}

// PagesListed is the number of pages listed so far by every source.
func PagesListed() int64 { return pagesListed.Load() }
