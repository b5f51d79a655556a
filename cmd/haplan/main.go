package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

func main() {
	stop := profile(os.Getenv)
	code := Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// profile starts the profiles the environment asks for, for performance
// work on a real run (docs/troubleshooting.md): HAPLAN_CPUPROFILE=FILE
// writes a CPU profile, HAPLAN_MEMPROFILE=FILE a heap profile at the end;
// read them with `go tool pprof`. The returned func writes and closes them.
func profile(getenv func(string) string) (stop func()) {
	var done []func()
	if path := getenv("HAPLAN_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "haplan: HAPLAN_CPUPROFILE: %v\n", err)
		} else {
			done = append(done, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := getenv("HAPLAN_MEMPROFILE"); path != "" {
		done = append(done, func() {
			f, err := os.Create(path)
			if err == nil {
				runtime.GC()
				err = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "haplan: HAPLAN_MEMPROFILE: %v\n", err)
			}
		})
	}
	return func() {
		for _, d := range done {
			d()
		}
	}
}
