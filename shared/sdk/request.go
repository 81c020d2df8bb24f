package sdk

// Decode is the one request prelude: it decodes the request's connection
// block into C and its spec into S, strictly (an unknown key is an error),
// and reports a failure as a config diagnostic on the block it came from.
// ok is false when either block does not decode; the plugin then returns
// with d as its answer.
//
//	c, s, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
//	if !ok {
//		return
//	}
//
// Use struct{} for a block the plugin has no fields for.
func Decode[C, S any](t Target, d *Diagnostics) (c C, s S, ok bool) {
	ok = true
	if err := t.DecodeConnection(&c); err != nil {
		d.AddAttributeError(Path{"connection"}, "invalid connection", err.Error())
		ok = false
	}
	if err := t.DecodeSpec(&s); err != nil {
		d.AddAttributeError(Path{"spec"}, "invalid spec", err.Error())
		ok = false
	}
	return c, s, ok
}
