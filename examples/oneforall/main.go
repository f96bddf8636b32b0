// Command oneforall shows the OneForAll strategy: when a child fails, every
// other running child is stopped, one at a time in reverse start order, and
// then all of them start again in start order.
//
// It runs the scenario of the package's ExampleOneForAll: children a, b and c
// are added in that order, b fails once, and the program prints which
// children were stopped (c, then a) and restarted (a, b, c), then each
// child's restart count (1 each).
//
//	go run ./examples/oneforall
package main

import (
	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/examples/internal/strategydemo"
)

func main() { strategydemo.Run(arbor.OneForAll) }
