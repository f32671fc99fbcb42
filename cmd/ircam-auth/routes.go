package main

// routes registers the OAuth2 endpoints on a.mux.
func (a *app) routes() error {
	return nil
}
