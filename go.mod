module github.com/ircam/ircam-auth

go 1.26.8

require (
	github.com/BurntSushi/toml v1.3.2
	github.com/chromedp/chromedp v0.23.1
	github.com/glauth/ldap v0.0.0-20240419171521-1f14f5c1b4ad
	github.com/go-ldap/ldap/v3 v3.4.15
	github.com/rs/zerolog v1.35.1
	go.opentelemetry.io/otel/trace v1.47.0
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/oauth2 v0.38.0
	golang.org/x/term v0.48.0
)

require (
	github.com/GeertJohan/yubigo v0.0.0-20190917122436-175bc097e60e // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/boombuler/barcode v1.0.1-0.20190219062509-6c824513bacc // indirect
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/matttproud/golang_protobuf_extensions/v2 v2.0.0 // indirect
	github.com/pquerna/otp v1.4.0 // indirect
	github.com/prometheus/client_golang v1.18.0 // indirect
	github.com/prometheus/client_model v0.5.0 // indirect
	github.com/prometheus/common v0.45.0 // indirect
	github.com/prometheus/procfs v0.12.0 // indirect
	github.com/rickb777/date v1.12.4 // indirect
	github.com/rickb777/plural v1.2.0 // indirect
	github.com/yaegashi/msgraph.go v0.1.4 // indirect
	google.golang.org/protobuf v1.31.0 // indirect
)

require (
	github.com/Azure/go-ntlmssp v0.1.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/glauth/glauth/v2 v2.4.0
	github.com/go-asn1-ber/asn1-ber v1.5.8
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
