// Command oneforone shows the OneForOne strategy (the default): when a child
// fails, only that child is restarted; its siblings keep running untouched.
//
// It runs the scenario of the package's ExampleOneForOne: children a, b and c
// are added in that order, b fails once, and the program prints which
// children were stopped and restarted, then each child's restart count
// (a 0, b 1, c 0).
//
//	go run ./examples/oneforone
package main

import (
	"github.com/arborgo/arbor"
	"github.com/arborgo/arbor/examples/internal/strategydemo"
)

func main() { strategydemo.Run(arbor.OneForOne) }
