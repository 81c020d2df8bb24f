package main

import "context"

// haproxyFlavor manages HAProxy. (Skeleton: H3 implements it.)
type haproxyFlavor struct{}

func (haproxyFlavor) kind() string                                { return "haproxy" }
func (haproxyFlavor) render(*target, renderInput) ([]byte, error) { return nil, errTODO }
func (haproxyFlavor) test(context.Context, *target) error         { return errTODO }
func (haproxyFlavor) reload(context.Context, *target) error       { return errTODO }
func (haproxyFlavor) routes(context.Context, *target) (routeFacts, error) {
	return routeFacts{}, errTODO
}
