module github.com/mnpool/mnpool

go 1.26
