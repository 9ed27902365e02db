package pool

// Unexported defaults the external tests compare against.
const (
	DefaultStaleIntervalsForTest = defaultStaleIntervals
	DefaultBatchSizeForTest      = defaultBatchSize
)
