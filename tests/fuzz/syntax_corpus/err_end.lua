async function f()
  return 1
