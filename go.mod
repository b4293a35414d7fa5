module github.com/presencebridge/presencebridge

go 1.26

require (
	github.com/coder/websocket v1.8.15
	go.etcd.io/bbolt v1.5.0
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/sys v0.45.0
)
