"""The research lab: benchmarks, generalisation tables, the experiment runner and its recipes, the
GPU stages. Each is run from the project's folder as `python -m lab.NAME`; the lab imports the
product's modules and the product never imports the lab."""
