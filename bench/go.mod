module github.com/arborgo/arbor/bench

go 1.25.0

require (
	github.com/arborgo/arbor v0.0.0
	github.com/thejerf/suture/v4 v4.0.6
)

require (
	github.com/alitto/pond/v2 v2.7.1
	github.com/panjf2000/ants/v2 v2.12.1
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.22.0
)

replace github.com/arborgo/arbor => ../
