package engine

import "context"

type applyKey struct{}

// MayChange reports whether ctx is the context of a step's Apply, the only
// place a step may change the world. Probes, the re-check before Apply and
// every caller outside the engine get false. Transports open read-only
// connections unless it is true (resources does), so the read-only gate is
// set by the engine, never by the step that asks.
func MayChange(ctx context.Context) bool {
	v, _ := ctx.Value(applyKey{}).(bool)
	return v
}

func withChange(ctx context.Context) context.Context {
	return context.WithValue(ctx, applyKey{}, true)
}

func withoutChange(ctx context.Context) context.Context {
	if !MayChange(ctx) {
		return ctx
	}
	return context.WithValue(ctx, applyKey{}, false)
}
