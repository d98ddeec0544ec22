package edge

// AdmissionWaits is how many ingest admissions of project pnum had to wait
// for a slot (for the tests of fair admission).
func AdmissionWaits(s *Server, pnum uint32) int64 { return s.ingest.adm.projectWaits(pnum) }
