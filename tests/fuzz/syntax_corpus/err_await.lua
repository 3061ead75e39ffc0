x = await local y
