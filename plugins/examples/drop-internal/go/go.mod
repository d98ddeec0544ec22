module github.com/uptimizr/edge/plugins/examples/drop-internal/go

go 1.26

require github.com/uptimizr/edge/plugins/sdk/go v0.0.0

require (
	github.com/tetratelabs/wazero v1.12.0 // indirect
	golang.org/x/sys v0.44.0 // indirect
)

replace github.com/uptimizr/edge/plugins/sdk/go => ../../../sdk/go
