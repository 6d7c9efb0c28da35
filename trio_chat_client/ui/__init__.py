"""Terminal input and output: a pure line editor and the consoles that drive a real terminal."""
