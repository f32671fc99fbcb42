package token

// StoreSize returns how many codes and tokens s holds, expired or not.
func StoreSize(s *Service) (codes, tokens int) { return s.store.size() }
