module github.com/imageflow/imageflow

go 1.26.8

require (
	github.com/gophercloud/gophercloud/v2 v2.15.0
	golang.org/x/time v0.16.0
)
