module github.com/arborgo/arbor/bench

go 1.25.0

require (
	github.com/arborgo/arbor v0.0.0
	github.com/thejerf/suture/v4 v4.0.6
)

require go.uber.org/goleak v1.3.0

replace github.com/arborgo/arbor => ../
