-- Number of child datasets of one dataset (nosync). args: { parent = "..." }
local n = 0
for _ in zfs.list.children((...)["parent"]) do n = n + 1 end
return n
