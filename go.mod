module github.com/imageflow/imageflow

go 1.26.8
