require "fileinto";
# Règle
fileinto "Réunions";
