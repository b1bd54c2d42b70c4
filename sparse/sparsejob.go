package sparse

// sparseJob is filled in by the sparse GEMV entry points.
type sparseJob struct {
	run func(i int)
}

func (s *sparseJob) do(i int) { s.run(i) }
