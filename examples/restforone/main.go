// Command restforone shows the RestForOne strategy: when a child fails, the
// children added after it are stopped in reverse start order, then the failed
// child and those after it start again in start order; the children added
// before it keep running.
//
// It runs the scenario of the package's ExampleRestForOne: children a, b and c
// are added in that order, b fails once, and the program prints which
// children were stopped (c) and restarted (b, c), then each child's restart
// count (a 0, b 1, c 1).
//
//	go run ./examples/restforone
package main

import (
	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/examples/internal/strategydemo"
)

func main() { strategydemo.Run(arbor.RestForOne) }
