package main

import (
	"context"
	"errors"
)

// nginxFlavor manages nginx. (Skeleton: H2 implements it.)
type nginxFlavor struct{}

var errTODO = errors.New("not implemented yet")

func (nginxFlavor) kind() string                                        { return "nginx" }
func (nginxFlavor) render(*target, renderInput) ([]byte, error)         { return nil, errTODO }
func (nginxFlavor) test(context.Context, *target) error                 { return errTODO }
func (nginxFlavor) reload(context.Context, *target) error               { return errTODO }
func (nginxFlavor) routes(context.Context, *target) (routeFacts, error) { return routeFacts{}, errTODO }
