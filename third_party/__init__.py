"""Code that lives in the PyTorch world; never imported by jaxmani itself."""
