"""Operations on images already in a registry, without a daemon: index authoring, tag/untag, mutate, rebase,
flatten, reading blobs and files. Each module does one; new documents go out through the graph copy in
`ocipush.transfer`, so blobs are mounted or streamed exactly as in `copy`."""
